"""What people read: the HTML report (`report`, PDF through Chromium), its
charts (`charts`), the Excel workbook (`excel`), labels in Japanese and English
(`i18n`), load profiles by day type (`loadprofile`) and the Jinja templates.
Same layer as mieruka.service, whose figures it lays out."""
